# want: 5:20 Invalid confirm
door "k" {
  sequence       = ["7000", "8000", "9000"]
  open           = ["22"]
  confirm        = "yes"
}
