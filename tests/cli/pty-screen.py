#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run a command on a pseudo-terminal of a given size, press keys, and print what the screen
shows at chosen moments (tests/cli/test-top-cluster.sh drives `gpuvirt top` with it).

    pty-screen.py ROWSxCOLS STEP... -- COMMAND [ARGS]

Steps, in order:
    wait:TEXT      read the output until the screen shows TEXT and nothing more came for 0.3 s
                   (10 s at most; fails otherwise)
    sleep:SECONDS  read the output for that long
    key:CHARS      send CHARS (\\t, \\x0c and the like are understood)
    sh:COMMAND     run COMMAND with /bin/sh (the screen stays as it is meanwhile)
    resize:RxC     give the terminal R rows and C columns (the kernel sends SIGWINCH); the
                   screen starts blank at the new size, as a terminal that reflows would not
    snap           print the screen between "--- screen" and "--- end" lines

The screen is kept by a small VT100/xterm interpreter: enough of ECMA-48 for what ncurses sends
a TERM=xterm terminal (cursor addressing, erasing, repeating, inserting and deleting characters
and lines, scroll regions; attributes and modes are read and ignored). At the end the command
gets 10 s to exit; the script prints "--- exit N" (N: its exit status, or "signal S") and the
raw output's last 200 bytes as "--- tail" (repr), so a test can see the terminal was restored.
"""
import os
import pty
import re
import select
import struct
import subprocess
import sys
import time
import fcntl
import termios


class Screen:
    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols
        self.lines = [[" "] * cols for _ in range(rows)]
        self.y = self.x = 0
        self.pending_wrap = False
        self.top, self.bottom = 0, rows - 1
        self.last = " "
        self.saved = (0, 0)
        self.buf = ""

    def text(self):
        return "\n".join("".join(l).rstrip() for l in self.lines)

    def _scroll_up(self, top, bottom, n=1):
        for _ in range(n):
            del self.lines[top]
            self.lines.insert(bottom, [" "] * self.cols)

    def _scroll_down(self, top, bottom, n=1):
        for _ in range(n):
            del self.lines[bottom]
            self.lines.insert(top, [" "] * self.cols)

    def _put(self, ch):
        if self.pending_wrap:
            self.pending_wrap = False
            self.x = 0
            self._linefeed()
        self.lines[self.y][self.x] = ch
        self.last = ch
        if self.x == self.cols - 1:
            self.pending_wrap = True
        else:
            self.x += 1

    def _linefeed(self):
        if self.y == self.bottom:
            self._scroll_up(self.top, self.bottom)
        elif self.y < self.rows - 1:
            self.y += 1

    def _csi(self, private, params, final):
        nums = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else []
        n = nums[0] if nums and nums[0] > 0 else 1
        self.pending_wrap = False
        if private:
            return  # modes (?1049h ...) change nothing we look at
        if final in "Hf":
            r = nums[0] if len(nums) > 0 and nums[0] else 1
            c = nums[1] if len(nums) > 1 and nums[1] else 1
            self.y, self.x = min(r, self.rows) - 1, min(c, self.cols) - 1
        elif final == "d":
            self.y = min(n, self.rows) - 1
        elif final in "G`":
            self.x = min(n, self.cols) - 1
        elif final == "A":
            self.y = max(self.y - n, 0)
        elif final == "B":
            self.y = min(self.y + n, self.rows - 1)
        elif final == "C":
            self.x = min(self.x + n, self.cols - 1)
        elif final == "D":
            self.x = max(self.x - n, 0)
        elif final == "J":
            mode = nums[0] if nums else 0
            if mode == 2 or mode == 3:
                self.lines = [[" "] * self.cols for _ in range(self.rows)]
            elif mode == 0:
                self.lines[self.y][self.x:] = [" "] * (self.cols - self.x)
                for r in range(self.y + 1, self.rows):
                    self.lines[r] = [" "] * self.cols
            elif mode == 1:
                for r in range(self.y):
                    self.lines[r] = [" "] * self.cols
                self.lines[self.y][: self.x + 1] = [" "] * (self.x + 1)
        elif final == "K":
            mode = nums[0] if nums else 0
            line = self.lines[self.y]
            if mode == 0:
                line[self.x:] = [" "] * (self.cols - self.x)
            elif mode == 1:
                line[: self.x + 1] = [" "] * (self.x + 1)
            else:
                self.lines[self.y] = [" "] * self.cols
        elif final == "X":
            for i in range(self.x, min(self.x + n, self.cols)):
                self.lines[self.y][i] = " "
        elif final == "b":
            for _ in range(n):
                self._put(self.last)
        elif final == "@":
            line = self.lines[self.y]
            line[self.x:self.x] = [" "] * n
            del line[self.cols:]
        elif final == "P":
            line = self.lines[self.y]
            del line[self.x:self.x + n]
            line.extend([" "] * (self.cols - len(line)))
        elif final == "L":
            if self.top <= self.y <= self.bottom:
                self._scroll_down(self.y, self.bottom, n)
        elif final == "M":
            if self.top <= self.y <= self.bottom:
                self._scroll_up(self.y, self.bottom, n)
        elif final == "S":
            self._scroll_up(self.top, self.bottom, n)
        elif final == "T":
            self._scroll_down(self.top, self.bottom, n)
        elif final == "r":
            t = nums[0] if len(nums) > 0 and nums[0] else 1
            b = nums[1] if len(nums) > 1 and nums[1] else self.rows
            self.top, self.bottom = t - 1, min(b, self.rows) - 1
            self.y = self.x = 0
        # m (attributes), t (window ops), h/l (modes), n (reports): nothing to draw

    def feed(self, data):
        s = self.buf + data
        self.buf = ""
        i = 0
        while i < len(s):
            c = s[i]
            if c == "\x1b":
                if i + 1 >= len(s):
                    self.buf = s[i:]
                    return
                nxt = s[i + 1]
                if nxt == "[":
                    m = re.match(r"\x1b\[([?>=!]?)([0-9;]*)([ -/]*)([@-~])", s[i:])
                    if not m:
                        if len(s) - i < 32:
                            self.buf = s[i:]
                            return
                        i += 2
                        continue
                    self._csi(m.group(1), m.group(2), m.group(4))
                    i += m.end()
                    continue
                if nxt in "()*+":
                    if i + 2 >= len(s):
                        self.buf = s[i:]
                        return
                    i += 3
                    continue
                if nxt == "]":  # OSC ... BEL or ST
                    end = s.find("\x07", i)
                    st = s.find("\x1b\\", i)
                    ends = [e for e in (end, st) if e >= 0]
                    if not ends:
                        self.buf = s[i:]
                        return
                    e = min(ends)
                    i = e + (1 if e == end else 2)
                    continue
                if nxt == "7":
                    self.saved = (self.y, self.x)
                elif nxt == "8":
                    self.y, self.x = self.saved
                elif nxt == "M":
                    if self.y == self.top:
                        self._scroll_down(self.top, self.bottom)
                    elif self.y > 0:
                        self.y -= 1
                elif nxt == "D":
                    self._linefeed()
                elif nxt == "E":
                    self.x = 0
                    self._linefeed()
                elif nxt == "c":
                    self.__init__(self.rows, self.cols)
                i += 2
                continue
            if c == "\r":
                self.x = 0
                self.pending_wrap = False
            elif c == "\n" or c == "\x0b" or c == "\x0c":
                self.pending_wrap = False
                self._linefeed()
            elif c == "\b":
                self.pending_wrap = False
                self.x = max(self.x - 1, 0)
            elif c == "\t":
                self.x = min((self.x // 8 + 1) * 8, self.cols - 1)
            elif c < " " or c == "\x7f":
                pass
            else:
                self._put(c)
            i += 1


def main():
    args = sys.argv[1:]
    if "--" not in args or len(args) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    sep = args.index("--")
    size, steps, cmd = args[0], args[1:sep], args[sep + 1:]
    rows, cols = (int(v) for v in size.split("x"))
    screen = Screen(rows, cols)
    raw = bytearray()

    pid, fd = pty.fork()
    if pid == 0:
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)

    eof = False

    def pump(seconds, until=None):
        nonlocal eof
        end = time.time() + seconds
        quiet_since = None
        while time.time() < end and not eof:
            if until and until in screen.text():
                # let the screen settle: a frame may come in several writes
                if quiet_since is not None and time.time() - quiet_since >= 0.3:
                    return True
            r, _, _ = select.select([fd], [], [], 0.05)
            if not r:
                if quiet_since is None:
                    quiet_since = time.time()
                continue
            quiet_since = None
            try:
                d = os.read(fd, 65536)
            except OSError:
                d = b""
            if not d:
                eof = True
                break
            raw.extend(d)
            screen.feed(d.decode("utf-8", "replace"))
        return until in screen.text() if until else True

    ok = True
    for step in steps:
        kind, _, arg = step.partition(":")
        if kind == "wait":
            if not pump(10, arg):
                print("--- wait failed: %r never on the screen" % arg)
                print("--- screen\n" + screen.text() + "\n--- end")
                ok = False
                break
        elif kind == "sleep":
            pump(float(arg))
        elif kind == "key":
            os.write(fd, arg.encode().decode("unicode_escape").encode("latin-1"))
        elif kind == "resize":
            rows, cols = (int(v) for v in arg.split("x"))
            screen.__init__(rows, cols)
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        elif kind == "sh":
            subprocess.run(["/bin/sh", "-c", arg], check=False)
        elif kind == "snap":
            print("--- screen\n" + screen.text() + "\n--- end")
        else:
            print("unknown step %r" % step, file=sys.stderr)
            return 2
    deadline = time.time() + 10
    status = None
    while time.time() < deadline:
        pump(0.1)
        p, st = os.waitpid(pid, os.WNOHANG)
        if p == pid:
            status = st
            break
    if status is None:
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        print("--- exit timeout")
    pump(0.2)
    if os.WIFEXITED(status):
        print("--- exit %d" % os.WEXITSTATUS(status))
    else:
        print("--- exit signal %d" % os.WTERMSIG(status))
    print("--- tail %r" % bytes(raw[-200:]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
