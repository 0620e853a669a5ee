# backscatter: runs the backscatter filter, then your own script "user-script".
# Remove with `backscatter sieve uninstall`, which re-activates yours.
require ["include"];
include :personal "backscatter";
include :personal "user-script";
