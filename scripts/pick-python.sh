#!/usr/bin/env bash
# The interpreter `make` builds .venv from (PYTHON=... overrides it): the distribution's CPython 3.11
# when the machine has one that can make a venv, else python3 from PATH.
#
# Why: the mocks' hot path is pure Python, and how CPython was built moves it by more than any change
# to it could. Debian's /usr/bin/python3.11 links libpython statically; pyenv's default build (this
# machine's python3) is a shared libpython built without PGO or LTO. The same captcha mock, the same
# load: about 14 % more requests per second on Debian's (docs/scale.md, "The interpreter").
for candidate in /usr/bin/python3.11; do
  if [ -x "$candidate" ] && "$candidate" -c 'import ensurepip, venv, sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "$candidate"
    exit 0
  fi
done
echo python3
