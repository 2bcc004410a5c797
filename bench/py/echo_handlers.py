"""The two echo handlers of pyasync_echo.py, for any asyncore module (pymsg.py, pycount.py)."""


def classes(mod):
    class DocsEcho(mod.dispatcher_with_send):
        def handle_read(self):
            data = self.recv(8192)
            if data:
                self.send(data)

    class TunedEcho(mod.dispatcher):
        pending = b""

        def writable(self):
            return bool(self.pending)

        def handle_read(self):
            try:
                data = self.socket.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                self.close()
                return
            if self.pending:
                self.pending += data
                return
            try:
                n = self.socket.send(data)
            except BlockingIOError:
                n = 0
            if n < len(data):
                self.pending = data[n:]

        def handle_write(self):
            try:
                n = self.socket.send(self.pending)
            except BlockingIOError:
                return
            self.pending = self.pending[n:]

        def handle_close(self):
            self.close()

    return {"docs": DocsEcho, "tuned": TunedEcho}
