"""The fault matrix: every provider x every fault x plain/streaming, through `/v1/chat/completions`."""
