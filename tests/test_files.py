"""files.py's atomic writes and the one line every command prints for an OSError that
no command put into words (a full disk, a permission taken away meanwhile)."""
import errno
import os

import pytest

from digits_gan_plugin import cli, gallery
from digits_gan_plugin.files import atomic_write, write_json_atomic


def test_a_failed_atomic_write_names_the_target_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "eval.json"
    write_json_atomic(target, {"old": 1})

    def full_disk(tmp_name):
        with open(tmp_name, "w") as handle:
            handle.write("{half")
        raise OSError(errno.ENOSPC, "No space left on device")  # as Python's own writes raise it: no file named

    with pytest.raises(OSError) as caught:
        atomic_write(target, full_disk)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert target.read_text() == '{\n  "old": 1\n}\n'
    assert os.listdir(tmp_path) == ["eval.json"]


def test_a_missing_folder_that_cannot_be_made_is_the_same_kind_of_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError) as caught:  # the subclass survives the renaming
        write_json_atomic(tmp_path / "file" / "sub" / "x.json", {})
    assert caught.value.filename == str(tmp_path / "file" / "sub" / "x.json")


@pytest.mark.parametrize("error, line", [
    (PermissionError(errno.EACCES, "Permission denied", "/jobs/a/gallery"), "/jobs/a/gallery: Permission denied"),
    (OSError(errno.ENOSPC, "No space left on device", "a.png", None, "b/a.png"), "a.png -> b/a.png: No space left on device"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
])
def test_an_os_error_no_command_handled_is_one_line_not_a_traceback(monkeypatch, capsys, tmp_path, error, line):
    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(gallery, "write_gallery", fails)
    assert cli.main(["gallery", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"digits-gan: error: {line}\n"
    with pytest.raises(OSError):
        cli.main(["--debug", "gallery", str(tmp_path)])
