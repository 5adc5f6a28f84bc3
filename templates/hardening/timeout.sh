# Written by provision ([hardening]): an interactive shell left idle for 15 minutes logs out.
case $- in
    *i*) if [ -z "${TMOUT:-}" ]; then TMOUT=900; readonly TMOUT; export TMOUT; fi ;;
esac
