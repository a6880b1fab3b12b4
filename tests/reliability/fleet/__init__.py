"""Fleet reliability trials: conductor processes on a real jobboard, killed,
stopped and fed a poison job (see ``README.md`` here and ``driver.py``)."""
