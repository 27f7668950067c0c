# want: 3:24 line 1: "70x0" is not a port
door "o" {
  one_time_sequences = "../bad.seqs.txt"
  open = ["22"]
}
