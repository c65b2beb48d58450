"""Executes the notebooks headlessly with nbclient (`make notebooks`).

Each notebook runs with its own folder as the working directory; the executed copy
(outputs included) goes to <out>/notebooks/, so the notebooks in the repository stay
free of outputs. Exits non-zero on the first cell that raises.

    python notebooks/run.py [NOTEBOOK ...]   (default: notebooks/*.ipynb)
"""

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] or sorted(HERE.glob("*.ipynb"))
    out = Path(os.environ.get("ANCHOR_OUT", HERE.parent / "data" / "out")) / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.resolve().parent)}},
        )
        try:
            client.execute()
        except CellExecutionError as e:
            print(f"{path}: a cell failed\n{e}", file=sys.stderr)
            return 1
        target = out / path.name
        nbformat.write(nb, target)
        notes = sum(
            1
            for cell in nb.cells
            if cell.cell_type == "code"
            for o in cell.get("outputs", [])
            if o.get("name") == "stdout" and "note:" in o.get("text", "")
        )
        print(f"{path.name}: ok ({len(nb.cells)} cells, {notes} cells with notes) -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
