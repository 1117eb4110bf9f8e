"""The Shipyard agent: a per-host program that runs CodeDeploy lifecycle commands.

It long-polls the server for host commands, downloads and unpacks the revision, installs
files per the appspec and runs hook scripts, reporting results in the stock
CodeDeploy agent's terms. Invariants:

- The on-disk layout (deployment root, deployment-instructions, cleanup files, logs) is
  the stock agent's, so files and tooling carry over.
- Install never leaves untracked files: everything it creates is in the group's cleanup
  file before (or, for directories, right after) it exists, and the next Install in the
  group removes it first.
- Bad input (appspec, bundle, spec) fails the command with one readable message; the agent
  itself keeps running.
"""
