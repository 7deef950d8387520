"""Runner-run gates and job kinds: the runner, not the model, decides "done".

    kinds.get_job_kind(kind) -> JobKind     template, commits, prestep(ctx) -> PreStep, gates(ctx) -> [Gate]
    report.render_report(results) -> str    the gate table and offending lines, for prompts and PR bodies
    pytest, coverage, mutants, ruff, diff   the gates; command, workdiff, outcomes, baseline their helpers

The settings gates read are core.gate_settings.GateSettings (built by config.runner.gate_settings).
"""
