# Writes OUT, a C++ file holding the built viewer script IN as one raw string literal.
# Fails when the script could end its <script> element early or end the literal.
file(READ "${IN}" JS)
string(FIND "${JS}" "</script" bad_tag)
string(FIND "${JS}" "</SCRIPT" bad_tag_upper)
string(FIND "${JS}" ")attnscope_js\"" bad_delim)
if(NOT bad_tag EQUAL -1 OR NOT bad_tag_upper EQUAL -1 OR NOT bad_delim EQUAL -1)
  message(FATAL_ERROR "${IN}: the viewer script contains </script or the literal's delimiter; it cannot be embedded")
endif()
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by cmake/embed_viewer.cmake; do not edit.\n"
  "#include \"viewer_asset.h\"\n\nnamespace attnscope {\nnamespace {\nconstexpr char kViewer[] = R\"attnscope_js(${JS})attnscope_js\";\n}\n"
  "const char* viewer_script() { return kViewer; }\nsize_t viewer_script_size() { return sizeof(kViewer) - 1; }\n}  // namespace attnscope\n")
file(RENAME "${OUT}.tmp" "${OUT}")
