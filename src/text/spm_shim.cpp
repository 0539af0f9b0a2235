// A C interface to libsentencepiece, built as its own shared object and opened with
// dlopen(RTLD_LOCAL | RTLD_DEEPBIND): libsentencepiece carries its own copy of protobuf, and
// linking it into a process that also loads libtorch's libprotobuf crashes at start-up when
// the two copies' symbols interpose. Loaded this way, each library keeps its own.
#include <sentencepiece_processor.h>

#include <cstdlib>
#include <cstring>
#include <string>

extern "C" {

void* aspm_load(const char* path, char* err, int errlen) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  auto st = sp->Load(path);
  if (!st.ok()) {
    std::snprintf(err, size_t(errlen), "%s", st.ToString().c_str());
    delete sp;
    return nullptr;
  }
  return sp;
}
void aspm_free(void* h) { delete static_cast<sentencepiece::SentencePieceProcessor*>(h); }
int aspm_size(void* h) { return static_cast<sentencepiece::SentencePieceProcessor*>(h)->GetPieceSize(); }
int aspm_bos(void* h) { return static_cast<sentencepiece::SentencePieceProcessor*>(h)->bos_id(); }
int aspm_eos(void* h) { return static_cast<sentencepiece::SentencePieceProcessor*>(h)->eos_id(); }
// bit 0: control, bit 1: byte piece, bit 2: unknown
int aspm_flags(void* h, int id) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  return (sp->IsControl(id) ? 1 : 0) | (sp->IsByte(id) ? 2 : 0) | (sp->IsUnknown(id) ? 4 : 0);
}
const char* aspm_piece(void* h, int id) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(h)->IdToPiece(id).c_str();
}
int aspm_piece_to_id(void* h, const char* s, size_t n) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(h)->PieceToId(std::string(s, n));
}
// Pieces of text: ids and [begin, end) byte offsets, in malloc'ed arrays the caller releases.
int aspm_encode(void* h, const char* text, size_t len, int** ids, unsigned** begins, unsigned** ends) {
  auto spt = static_cast<sentencepiece::SentencePieceProcessor*>(h)->EncodeAsImmutableProto(std::string(text, len));
  const int n = int(spt.pieces_size());
  *ids = static_cast<int*>(std::malloc(sizeof(int) * size_t(n + 1)));
  *begins = static_cast<unsigned*>(std::malloc(sizeof(unsigned) * size_t(n + 1)));
  *ends = static_cast<unsigned*>(std::malloc(sizeof(unsigned) * size_t(n + 1)));
  for (int i = 0; i < n; ++i) {
    auto p = spt.pieces(i);
    (*ids)[i] = int(p.id());
    (*begins)[i] = p.begin();
    (*ends)[i] = p.end();
  }
  return n;
}
char* aspm_decode(void* h, const int* ids, int n) {
  std::string s = static_cast<sentencepiece::SentencePieceProcessor*>(h)->DecodeIds(std::vector<int>(ids, ids + n));
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}
void aspm_release(void* p) { std::free(p); }
}
