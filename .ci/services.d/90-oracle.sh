# The original TaskFlow 6.5.0 for the oracle tests: scripts/oracle creates its
# virtualenv once (cached under ~/.cache/taskflow-ng) and returns at once after.
scripts/oracle --python >/dev/null
