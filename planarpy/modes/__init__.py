"""The three modes. Each registers its `call` handlers; none is asked "are we live?"."""
