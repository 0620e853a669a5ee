# A user's rules for the bench (benches/rules.rs). Hand-written, in the
# style of the published examples in tests/fixtures/sieve-scripts/
# (mailing lists by List-Id, subaddress folders, flags, a body test), so
# that Pigeonhole's sieve-filter and backscatter filter run the same file.
require ["fileinto", "mailbox", "imap4flags", "variables", "body", "envelope",
         "relational", "comparator-i;ascii-numeric", "subaddress", "copy"];

# Mail from the postmaster's side: bounces and robots.
if anyof (address :localpart :is "from" ["mailer-daemon", "postmaster"],
          header :contains "subject" ["Undelivered", "Delivery Status",
                                       "Returned mail", "failure notice"]) {
  addflag "$bounce";
  fileinto :create "Robots/Bounces";
  stop;
}
if anyof (header :contains "auto-submitted" "auto-replied",
          header :contains "subject" ["Out of Office", "Automatic reply",
                                       "Abwesenheitsnotiz", "Autoreply"]) {
  fileinto :create "Robots/Auto-replies";
  stop;
}

# Mailing lists: one folder per List-Id.
if header :matches "list-id" "*<*.*>*" {
  set :lower "list" "${2}";
  fileinto :create "Lists/${list}";
  stop;
}

# Plus-addressed mail by its detail.
if envelope :detail :matches "to" "*" {
  if string :is "${1}" "" { } else {
    fileinto :create "Plus/${1}";
  }
}

# Flags: high priority, and one word in the body.
if header :value "le" :comparator "i;ascii-numeric" "x-priority" "2" {
  addflag "\\Flagged";
}
if body :text :contains ["invoice", "Rechnung", "facture"] {
  fileinto :copy :create :flags "$invoice" "Invoices";
}
if size :over 500K {
  addflag "$large";
}
