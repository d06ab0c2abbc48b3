#!/usr/bin/env bash
# Placeholder: the car-packaging work installs and starts dockerd here.
exit 0
