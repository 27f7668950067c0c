# want: 4:24 Lines 3, 5 of testdata/short.seqs; line 3: A 2-step
# severity: warning
door "o" {
  one_time_sequences = "../short.seqs"
  open = ["2222"]
}
