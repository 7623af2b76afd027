#pragma once
// Temporary files and folders: written under "<final name>.tmp.<pid>", renamed into place when
// complete. A crash leaves the temporary behind; whoever next writes beside it removes it once
// its process is gone (never a living process's).
#include <string>

namespace pb {

// "<path>.tmp.<this process's pid>"
std::string temporary_name(const std::string& path);
// Whether `name` is such a temporary whose process no longer exists.
bool abandoned_temporary(const std::string& name);
// Removes the abandoned temporaries in `dir` whose names start with `prefix`.
void remove_abandoned_temporaries(const std::string& dir, const std::string& prefix);
// Flushes a folder's entries to disk, so that a rename into it survives a crash. Throws
// pb::Error naming the folder; a file system that cannot sync folders is not an error.
void sync_directory(const std::string& dir);

}  // namespace pb
