"""What `pip install .` installs: every module and every file the gallery serves."""

import pathlib
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_wheel_holds_every_module_and_the_gallerys_files(tmp_path):
    subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', tmp_path, ROOT],
        check=True,
        cwd=tmp_path,
    )
    [wheel] = tmp_path.glob('asgilook-*.whl')

    packaged = set(zipfile.ZipFile(wheel).namelist())

    package = ROOT / 'asgilook'
    sources = {
        path.relative_to(ROOT).as_posix()
        for pattern in ('*.py', 'gallery/static/*')
        for path in package.rglob(pattern)
    }
    assert 'asgilook/gallery/static/gallery.js' in sources
    assert 'asgilook/cache/middleware.py' in sources
    assert sources <= packaged, sorted(sources - packaged)
