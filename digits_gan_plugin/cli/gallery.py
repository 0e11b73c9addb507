"""`digits-gan gallery JOBDIR`: a job's results as a static offline HTML gallery."""


def cmd_gallery(args):
    from ..gallery import write_gallery

    index = write_gallery(args.job_dir, progress=not args.quiet, title=args.title)
    print(f"gallery written to {index}")
    return 0


def register(subparsers):
    gallery = subparsers.add_parser(
        "gallery", help="render a job's pictures and inference results as a static HTML gallery",
        description="Write JOBDIR/gallery/index.html (opens offline): the training samples (every epoch's "
                    "fixed-seed grid and a timelapse GIF of them), the evaluation (eval.json) and every "
                    "inference result (JOBDIR/inference/*/) as labelled grids, GIFs and encoder rows.")
    gallery.add_argument("job_dir", metavar="JOBDIR")
    gallery.add_argument("--title", help="the page's title (default: the job folder's name)")
    gallery.add_argument("--quiet", action="store_true", help="no progress bar")
    gallery.set_defaults(func=cmd_gallery)
