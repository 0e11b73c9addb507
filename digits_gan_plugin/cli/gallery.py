"""`digits-gan gallery JOBDIR`: a job's results as a static offline HTML gallery."""


def cmd_gallery(args):
    from ..gallery import write_gallery

    print(f"gallery written to {write_gallery(args.job_dir, progress=not args.quiet)}")
    return 0


def register(subparsers):
    gallery = subparsers.add_parser("gallery", help="render a job's inference results as a static HTML gallery",
                                    description="Write JOBDIR/gallery/index.html with every inference result "
                                                "(JOBDIR/inference/*/result.npz) as PNG grids and GIFs.")
    gallery.add_argument("job_dir", metavar="JOBDIR")
    gallery.add_argument("--quiet", action="store_true", help="no progress bar")
    gallery.set_defaults(func=cmd_gallery)
