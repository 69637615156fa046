"""docs/API.md runs as a doctest on a copy of the demo store: the Python API's documentation cannot drift."""

from __future__ import annotations

import doctest
import shutil
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "API.md"


def test_api_doc_examples_run(demo, tmp_path):
    path = tmp_path / "store.duckdb"
    shutil.copyfile(demo.store_path, path)  # the examples save results
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = doctest.testfile(
        str(DOC),
        module_relative=False,
        globs={"path": path, "tmp": scratch},
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        raise_on_error=False,
        verbose=False,
    )
    assert result.attempted > 50, result  # the page's examples were found
    assert result.failed == 0, result
