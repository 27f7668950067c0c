# want: 7:24 Line 3 of
door "ssh" {
  sequence = ["7000", "8000", "9000"]
  open     = ["22"]
}
door "o" {
  one_time_sequences = "../guarded.seqs"
  open = ["2222"]
}
