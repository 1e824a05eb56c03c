namespace IsolateGrains.Engine.FileSystem;

/// <summary>
/// The errno numbers of Emscripten's libc (WASI numbering), which is what the guest's libc
/// expects back from the file and socket imports. Syscall imports return them negated,
/// <c>wasi_snapshot_preview1</c> imports return them as they are.
/// </summary>
internal static class Errno
{
    public const int Success = 0;
    public const int Access = 2;          // EACCES
    public const int BadFileDescriptor = 8; // EBADF
    public const int Exists = 20;         // EEXIST
    public const int Invalid = 28;        // EINVAL
    public const int IsDirectory = 31;    // EISDIR
    public const int TooManyFiles = 33;   // EMFILE
    public const int NameTooLong = 37;    // ENAMETOOLONG
    public const int NoDevice = 43;       // ENODEV
    public const int NoEntry = 44;        // ENOENT
    public const int NoSystemCall = 52;   // ENOSYS
    public const int NotDirectory = 54;   // ENOTDIR
    public const int NotEmpty = 55;       // ENOTEMPTY
    public const int NotTty = 59;         // ENOTTY
    public const int Overflow = 61;       // EOVERFLOW
    public const int NotPermitted = 63;   // EPERM
    public const int Range = 68;          // ERANGE
    public const int ReadOnlyFileSystem = 69; // EROFS
    public const int IllegalSeek = 70;    // ESPIPE
    public const int CrossDevice = 75;    // EXDEV
}
