# want: 3:24 no such file
door "o" {
  one_time_sequences = "../nope.seqs"
  open = ["22"]
}
