# want: 1:1 nothing is guarded
# severity: warning
table = "sesame"
