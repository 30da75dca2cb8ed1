"""The three modes. Each executes the one order pipeline through its own Executor; none
is asked "are we live?"."""
