"""Test-session setup shared by every test file."""
import signal

# A shell starts background jobs (`bash .ci/run &`, nohup) with SIGINT ignored, and an ignored
# signal stays ignored across exec: the Ctrl-C tests' child processes would then never see the
# SIGINT they are sent. Python's own handler in the test process is reset to the default in
# each child at exec, as a terminal-started run has it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
