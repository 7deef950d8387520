"""GitHub: publishing agent branches as pull requests, reviewing them, and the Actions workflows.

Import from the modules: `github.api` (the one home of PyGithub, imported lazily there), `github.records`,
`github.publisher`, `github.push` (pushes through `git`), `github.actions`, `github.train_pr` (publishing an
integration train), `github.refresh` (rebasing open agent PRs when their base moves); settings are in
`config.github`.
"""
