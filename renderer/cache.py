"""A byte-bounded LRU for pictures (or anything with a cost function), shared by every render
in a process."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PIL import Image

# Bytes per pixel as Pillow stores them: RGB, LA and the other multi-band modes take 4.
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}


def image_cost(value: Any) -> int:
    image = value[0] if isinstance(value, tuple) else value
    if isinstance(image, Image.Image):
        return image.width * image.height * _PIXEL_BYTES.get(image.mode, 4)
    return 64


class ImageLRU:
    def __init__(self, max_bytes: int, cost: Callable[[Any], int] = image_cost):
        self.max_bytes = max_bytes
        self._cost = cost
        self._items: OrderedDict = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # the CLI and workers render on threads too

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        cost = self._cost(value)
        if cost > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._size += cost
            while self._size > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._size -= self._cost(old)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0
