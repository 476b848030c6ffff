"""core/ never pulls in the UI stack: importing every core module leaves gradio, plotly and umap unloaded."""

import subprocess
import sys

from conftest import ROOT

CODE = """
import importlib, pkgutil, sys
import core
mods = [m.name for m in pkgutil.walk_packages(core.__path__, 'core.') if not m.name.endswith('__main__')]
for m in mods:
    importlib.import_module(m)
bad = sorted(n for n in sys.modules if n.split('.')[0] in ('gradio', 'plotly', 'umap', 'gradio_client'))
print(len(mods), bad)
assert not bad, bad
"""


def test_core_imports_no_ui_packages():
    r = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr + r.stdout
    n = int(r.stdout.split()[0])
    assert n >= 15  # the walk really imported the package's modules
