"""Sweeps: the queue fills itself from the repository (`run-agents sweep lint | tests | issues`).

A sweep measures the base commit in a scratch checkout (`scratch.py`; the user's work tree is never touched),
turns what it finds into task records sized to the kind's limits (`lint.py`, `tests.py`, `issues.py`, all
returning a `plan.SweepPlan`), and writes them as task files through `write.py`: new ones whole or not at
all, waiting ones updated, started or finished ones left alone. Ids come from what a task covers (a module,
a folder, an issue number), so a second sweep finds the tasks of the first.
"""
