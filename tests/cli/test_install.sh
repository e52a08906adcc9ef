# test_install.sh — issue 15 item 15: `make install PREFIX=...` gives a dam
# that finds its data (the embedded model, prompts/, configs/) in
# PREFIX/share/dam, also as a copy elsewhere; a dam that finds nothing says
# where it looked. Uses the objects already built in $BUILD (dirname of $DAM).
. tests/cli/lib.sh
BUILD=$(dirname "$DAM")
P="$TMP/prefix"
export XDG_CACHE_HOME="$TMP/cache" OMP_NUM_THREADS=1
unset DAM_MODEL DAM_CALIBRATION
if ! command -v make >/dev/null 2>&1; then echo "SKIP: install: make is not installed"; exit 0; fi
# the sanitizer build links its objects with the same flags
flags=""
[ -n "$DAM_SANITIZED" ] && flags="SANITIZE=1 OPT=-O1 WERROR="
if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install BUILD="$BUILD" PREFIX="$P" $flags >"$TMP/make.log" 2>&1; then
  ok 15_make_install_runs
else
  fail 15_make_install_runs "$(tail -5 "$TMP/make.log")"; exit 0
fi
for f in bin/dam share/dam/prompts/calibration.txt share/dam/prompts/calibration_retrieval.txt share/dam/prompts/haystack.txt \
         share/dam/configs/dam.json share/dam/third_party/models/testbed/config.json share/dam/third_party/models/testbed/tokenizer.json; do
  [ -s "$P/$f" ] || { fail 15_installed_files "missing $P/$f"; break; }
done
[ -s "$P/bin/dam" ] && [ -x "$P/bin/dam" ] && ok 15_installed_files

# a copy of the installed binary, far from both trees, run from elsewhere:
# only the PREFIX compiled in can lead it to its data
mkdir "$TMP/elsewhere" "$TMP/cwd"
cp "$P/bin/dam" "$TMP/elsewhere/dam"
(cd "$TMP/cwd" && "$TMP/elsewhere/dam" run --attn full -p Once -n 2 --json >"$TMP/j" 2>"$TMP/err"); rc=$?
[ $rc = 0 ] && [ "$(json_get "$TMP/j" "j['model']")" = "$P/share/dam/third_party/models/testbed" ] \
  && ok 15_copy_finds_embedded_model || fail 15_copy_finds_embedded_model "rc $rc: $(cat "$TMP/err")"
(cd "$TMP/cwd" && "$TMP/elsewhere/dam" run -m "$OLDPWD/$STORIES" --attn dam --dam-pcl 8 -p Once -n 2 >/dev/null 2>"$TMP/err"); rc=$?
[ $rc = 0 ] && ok 15_copy_finds_calibration_text || fail 15_copy_finds_calibration_text "rc $rc: $(cat "$TMP/err")"
(cd "$TMP/cwd" && "$TMP/elsewhere/dam" niah -m "$OLDPWD/$STORIES" --attn full --lengths 200 --depths 0.5 -q >/dev/null 2>"$TMP/err"); rc=$?
[ $rc = 0 ] && ok 15_copy_finds_haystack || fail 15_copy_finds_haystack "rc $rc: $(cat "$TMP/err")"

# the build's own binary, copied away from its tree: nothing to find, and the
# error lists every place it looked (the build tree, PREFIX/share/dam, ...)
if [ -e /usr/local/share/dam ]; then echo "SKIP: 15_missing_data_says_where: dam is installed in /usr/local"; exit 0; fi
mkdir "$TMP/lost"
cp "$DAM" "$TMP/lost/dam"
(cd "$TMP/cwd" && "$TMP/lost/dam" run --attn full -p Once -n 1 >"$TMP/out" 2>"$TMP/err"); rc=$?
[ $rc = 1 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "embedded model is missing: cannot find third_party/models/testbed (looked in $TMP/lost/../third_party/models/testbed, .*/share/dam/third_party/models/testbed" "$TMP/err" \
  && ok 15_missing_data_says_where || fail 15_missing_data_says_where "rc $rc: $(cat "$TMP/err")"
(cd "$TMP/cwd" && "$TMP/lost/dam" run -m "$OLDPWD/$STORIES" --attn dam -p Once -n 1 >"$TMP/out" 2>"$TMP/err"); rc=$?
[ $rc = 1 ] && grep -q "cannot find prompts/calibration.txt (looked in .*share/dam/prompts/calibration.txt" "$TMP/err" \
  && ok 15_missing_calibration_says_where || fail 15_missing_calibration_says_where "rc $rc: $(cat "$TMP/err")"
