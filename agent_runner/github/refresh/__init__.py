"""`run-agents refresh`: keep open agent PRs mergeable after their base branch moved.

`refresher` refreshes one repository's open agent PRs (its seams: `Verifier`, `Requeuer`); `scope` finds them
(accepted tasks in the queue whose PR is open) and runs it repository by repository; `train` implements the
seams with the integration train's parts (a verify job on a worker, the `train_requeued` event).
"""
