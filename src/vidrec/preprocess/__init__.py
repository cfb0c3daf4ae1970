"""Preprocessing: official downloads → frame folders (``image_00001.jpg``...) + annotation JSON.

One engine (:mod:`vidrec.preprocess.frames`) extracts frames for every dataset; the dataset modules only
list the jobs and parse the official label files. The commands in ``preprocess/`` are thin shims over the
``*_main`` functions here. This package never imports torch, so the commands start fast.
"""
