"""The analytic attribution imports nothing heavy on its first call.

``torch.broadcast_shapes`` in the Gaussian tail imported ``torch.fx``'s symbolic shapes and sympy (about 480
modules, 0.55 s of CPU) on the first attribution of every process: the whole slowdown of the bench's
attribution after ``a993d40`` (issue 15). A fresh interpreter is needed, since the test session may have
imported them already.
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys, warnings
warnings.filterwarnings("ignore")
import networkx as nx
import bayes_rca
from bayes_rca.data.synthetic import random_linear_system

graph = nx.DiGraph([("A", "B"), ("B", "C"), ("A", "C")])
system = random_linear_system(graph, seed=0)
model = bayes_rca.BayesianSCM(graph, num_draws=20, seed=0, progress=False).fit(system.sample(200, seed=0))
before = set(sys.modules)
for tail_df in (None, 2.0, 5.0):  # the Gaussian game and the robust one (closed form and scipy)
    bayes_rca.attribute_outliers(model, target="C", outliers=system.outlier({"A": 4.0}), tail_df=tail_df)
heavy = ("sympy", "torch.fx", "torch._dynamo", "torch._inductor")
print(json.dumps(sorted(m for m in set(sys.modules) - before if m.split(".")[0] in heavy or m.startswith(heavy))))
"""


def test_first_attribution_imports_no_sympy_or_torch_fx():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported == [], f"the attribution imported {len(imported)} heavy modules, e.g. {imported[:5]}"
