"""Training at a terminal: a progress bar on stderr, Ctrl-C that keeps the best model, advice on how it ended."""

from __future__ import annotations

import sys
import threading

from ecgviz.detectors.config import BY_CAP


class ProgressBar:
    """Epoch progress on stderr: a bar, both losses, elapsed time and an estimate of what is left."""

    def __init__(self, stream=None, width: int = 24):
        self.stream, self.width = stream or sys.stderr, width

    def __call__(self, info) -> None:  # info: ecgviz.detectors.train.EpochInfo
        done = info.epoch / info.epochs
        bar = "#" * round(done * self.width) + "." * (self.width - round(done * self.width))
        left = info.elapsed_s / info.epoch * (info.epochs - info.epoch)
        line = (f"\r[{bar}] epoch {info.epoch}/{info.epochs}  train {info.train_loss:.3f}  "
                f"val {info.val_loss:.3f}  best@{info.best_epoch}  {info.elapsed_s:.0f}s  <= {left:.0f}s left")
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


class _Stop(threading.Event):
    keep = False  # read by ecgviz.pipeline.protocol.fit: finish the best model so far instead of discarding it


def run_interruptible(run):
    """run(stop) in a worker thread. Ctrl-C stops and keeps the best model so far; a second Ctrl-C discards it."""
    stop, box, done = _Stop(), {}, threading.Event()

    def work():
        try:
            box["result"] = run(stop)
        except BaseException as exc:  # handed to the main thread, which raises it
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="ecgviz-train", daemon=True).start()
    # an Event, not Thread.join: a join interrupted by Ctrl-C can leave the thread looking finished
    while not done.is_set():
        try:
            done.wait(0.2)
        except KeyboardInterrupt:
            if stop.is_set():
                stop.keep = False
                print("\nstopping; nothing will be saved", file=sys.stderr)
            else:
                stop.keep = True
                stop.set()
                print("\nstopping; the best model so far will be saved (Ctrl-C again to discard it)",
                      file=sys.stderr)
    if "error" in box:
        from ecgviz.pipeline.protocol import TrainingCancelled

        if isinstance(box["error"], TrainingCancelled):
            raise KeyboardInterrupt
        raise box["error"]
    return box["result"]


def continue_advice(ckpt, path: str, degenerate: bool = False) -> list[str]:
    """What to say about how a run ended, with the command that continues it when more training may help."""
    tc = ckpt.train_config
    lines = []
    if tc.get("ended_by") == "user":
        lines.append(f"stopped early by the user: saved the best model up to epoch {len(ckpt.history)} "
                     f"(best epoch {tc.get('best_epoch')})")
    if tc.get("still_improving"):
        why = "its epoch cap" if tc.get("ended_by") == BY_CAP else "its time budget"
        lines.append(f"validation loss was still falling when the run reached {why} ({len(ckpt.history)} epochs)")
    if tc.get("still_improving") or degenerate or tc.get("ended_by") == "user":
        lines += ["to continue from where it stopped:",
                  f"  python -m ecgviz train --resume {path} --out {path} --force [--epochs N]"]
    return lines


