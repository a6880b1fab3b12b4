"""One module per jobboard kind for the contract tests.

Each defines ``make_board(name, persistence=None)``: a board, not yet
connected, whose namespace/path on its real server is derived from ``name``
(boards made with the same name share their jobs, like the boards of several
processes; each test uses a fresh name), skipping (failing under CI) when the
server is missing; and ``cleanup(board)``: removes what that namespace holds.
"""
