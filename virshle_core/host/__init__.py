"""What a node does with its host's files: template images, their formats and sizes, the
qemu-img, snapshots and leaks (``images``), and the image cache's downloads
(``downloads``)."""
