"""Reads a pyinfra 3.x run's output (file named by argv[1]); prints how many operations executed
commands on the host ("[host] Success"), i.e. changed something; "[host] No changes" is a no-op."""
import re
import sys

text = re.sub(r"\x1b\[[0-9;]*m", "", open(sys.argv[1], errors="replace").read())
success = len(re.findall(r"^\s*\[[^\]]+\] Success\b", text, re.M))
nochange = len(re.findall(r"^\s*\[[^\]]+\] No changes\b", text, re.M))
errors = len(re.findall(r"^\s*\[[^\]]+\] Error\b", text, re.M))
print(success if success + nochange > 0 and not errors else f"unparsed(errors={errors})")
