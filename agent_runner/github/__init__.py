"""GitHub: publishing agent branches as pull requests, reviewing them, and the Actions workflows.

Import from the modules: `github.api` (the one home of PyGithub, imported lazily there), `github.records`,
`github.publisher`, `github.push` (pushes through `git`), `github.actions`; settings are in `config.github`.
"""
