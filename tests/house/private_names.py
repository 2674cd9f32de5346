"""An import-linter contract of our own: no module imports another module's private names.

``from ragpress.a import _helper`` in any module other than ``ragpress.a`` breaks it: a leading
underscore means "only this module uses it", so what two modules share gets a public name in the
lower of their layers. (Private *modules*, ``ragpress.x._common``, are import-linter's own
``private_modules`` contract.) Names are read from the importer's source with ``ast``, so imports
that span several lines are checked too.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from importlinter.application import output
from importlinter.domain.contract import Contract, ContractCheck


def private_imports(module: str) -> list[tuple[int, str, str]]:
    """``(line, imported module, name)`` for every private name ``module`` imports from another ragpress module."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return []
    found = []
    for node in ast.walk(ast.parse(Path(spec.origin).read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("ragpress") and node.module != module:
            found += [(node.lineno, node.module, a.name) for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    return found


class PrivateNamesContract(Contract):
    type_name = "private_names"

    def check(self, graph, verbose: bool) -> ContractCheck:
        rows = [(module, *row) for module in sorted(graph.modules) if module.startswith("ragpress") for row in private_imports(module)]
        return ContractCheck(kept=not rows, metadata={"rows": rows})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for module, line, imported, name in check.metadata["rows"]:
            output.print_error(f"{module}:{line} imports the private name {name} from {imported}; give it a public name in the lower layer.")
