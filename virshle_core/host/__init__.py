"""What a node does with its host's files: template images, their formats and sizes, the
image cache and its downloads (``images``)."""
