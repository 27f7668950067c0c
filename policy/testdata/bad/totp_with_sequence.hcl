# want: 3:3 exactly one of sequence, a totp block or one_time_sequences
door "v" {
  sequence = ["7000", "8000", "9000"]
  totp {}
  client "a" { secret_file = "../secrets/alice.key" }
  open = ["22"]
}
