#!/usr/bin/env bash
# `make control-plane`: the build script ships inside the k4c package, so an installed k4c runs
# the same one (`k4c control-plane build`). This only hands over to it.
exec bash "$(dirname "$0")/../k4c_pytest/testing/build-control-plane.sh" "$@"
