# want: 4:24 One-time state not writable
state_dir = "/dev/null/sesame"
door "o" {
  one_time_sequences = "../reference.seqs"
  open = ["2222"]
}
