#!/bin/sh

# If you've non-standard directories, set these

autoreconf -i
