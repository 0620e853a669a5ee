# An example of a user's own script (hand-written): mailing-list mail into
# a folder, and a flag on mail from the boss. Used by the examples of what
# `backscatter sieve install` activates next to it.
require ["fileinto", "imap4flags"];

if header :contains "list-id" "lists.example.org" {
  fileinto "Lists";
  stop;
}
if address :is "from" "boss@example.org" {
  addflag "\\Flagged";
}
