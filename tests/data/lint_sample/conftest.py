# service.py is data for tests/test_lint.py, not a module of the suite: it
# imports the stubs module the test generates next to its copy of it.
collect_ignore = ["service.py"]
