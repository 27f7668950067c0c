# want: 4:16 Invalid max_grants
door "k" {
  sequence   = ["7000", "8000", "9000"]
  max_grants = "lots"
  open       = ["22"]
}
