"""Runs a command on a pseudo-terminal, waits for a prompt, types an answer.

Usage: pty_answer.py PROMPT ANSWER TRANSCRIPT -- COMMAND...
Writes everything the command printed to TRANSCRIPT and exits with the
command's exit code: a real terminal for allerta's confirmation prompt.
"""
import os
import pty
import select
import sys
import time

prompt, answer, transcript = sys.argv[1].encode(), sys.argv[2], sys.argv[3]
command = sys.argv[sys.argv.index("--") + 1:]

pid, fd = pty.fork()
if pid == 0:
    os.execvp(command[0], command)

seen = b""
answered = False
status = None
deadline = time.time() + 60
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if ready:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    if not answered and prompt in seen:
        os.write(fd, (answer + "\n").encode())
        answered = True
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        try:
            while True:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                seen += chunk
        except OSError:
            pass
        break
else:
    os.kill(pid, 9)
if status is None:
    _, status = os.waitpid(pid, 0)

with open(transcript, "wb") as f:
    f.write(seen)
sys.exit(os.waitstatus_to_exitcode(status))
