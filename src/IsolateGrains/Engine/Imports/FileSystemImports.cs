using IsolateGrains.Engine.FileSystem;
using Wasmtime;

namespace IsolateGrains.Engine.Imports;

/// <summary>
/// Files, directories and descriptors, served by the sandbox's <see cref="SandboxFileSystem"/>, never
/// by the host's disk. Emscripten syscalls return a negated errno, WASI functions a positive one;
/// structures are laid out as Emscripten's libc expects them.
/// </summary>
internal static unsafe class FileSystemImports
{
    private const string Wasi = "wasi_snapshot_preview1";
    private const int ModeDirectory = 0x4000;
    private const int ModeRegular = 0x8000;
    private const int ModeCharacterDevice = 0x2000;

    /// <summary>Defines the file system imports.</summary>
    public static void Define(Linker linker)
    {
        DefineDescriptorFunctions(linker);
        DefinePathFunctions(linker);
    }

    private static void DefineDescriptorFunctions(Linker linker)
    {
        linker.DefineFunction(Wasi, "fd_close", (Caller caller, int fd) => Sandbox.From(caller).Files.Close(fd));
        linker.DefineFunction(Wasi, "fd_write", (Caller caller, int fd, int iovs, int count, int written) =>
            Transfer(Sandbox.From(caller), fd, iovs, count, null, written, write: true));
        linker.DefineFunction(Wasi, "fd_read", (Caller caller, int fd, int iovs, int count, int read) =>
            Transfer(Sandbox.From(caller), fd, iovs, count, null, read, write: false));
        linker.DefineFunction(Wasi, "fd_pread", (Caller caller, int fd, int iovs, int count, long offset, int read) =>
            Transfer(Sandbox.From(caller), fd, iovs, count, offset, read, write: false));
        linker.DefineFunction(Wasi, "fd_pwrite", (Caller caller, int fd, int iovs, int count, long offset, int written) =>
            Transfer(Sandbox.From(caller), fd, iovs, count, offset, written, write: true));
        linker.DefineFunction(Wasi, "fd_seek", (Caller caller, int fd, long offset, int whence, int newOffset) =>
        {
            var sandbox = Sandbox.From(caller);
            if (sandbox.Files.Get(fd) is not { } file)
            {
                return Errno.BadFileDescriptor;
            }
            var error = sandbox.Files.Seek(file, offset, whence, out var position);
            if (error == Errno.Success)
            {
                sandbox.Exports.Memory.WriteInt64(newOffset, position);
            }
            return error;
        });
        linker.DefineFunction(Wasi, "fd_sync", (Caller caller, int fd) =>
            Sandbox.From(caller).Files.Get(fd) is null ? Errno.BadFileDescriptor : Errno.Success);
        linker.DefineFunction(Wasi, "fd_fdstat_get", (Caller caller, int fd, int buffer) =>
        {
            var sandbox = Sandbox.From(caller);
            if (sandbox.Files.Get(fd) is not { } file)
            {
                return Errno.BadFileDescriptor;
            }
            var span = sandbox.Span(buffer, 24);
            span.Clear();
            // WASI file types: 2 character device, 3 directory, 4 regular file.
            span[0] = file.Node.Kind switch
            {
                VirtualNodeKind.Device => 2,
                VirtualNodeKind.Directory => 3,
                _ => 4,
            };
            return Errno.Success;
        });
        linker.DefineFunction("env", "__syscall_fcntl64", (Caller caller, int fd, int command, int varargs) =>
            Fcntl(Sandbox.From(caller), fd, command, varargs));
        // No descriptor is a terminal.
        linker.DefineFunction("env", "__syscall_ioctl", (Caller caller, int fd, int operation, int varargs) =>
            Sandbox.From(caller).Files.Get(fd) is null ? -Errno.BadFileDescriptor : -Errno.NotTty);
        linker.DefineFunction("env", "__syscall_fstat64", (Caller caller, int fd, int buffer) =>
        {
            var sandbox = Sandbox.From(caller);
            return sandbox.Files.Get(fd) is { } file ? WriteStat(sandbox, file.Node, buffer) : -Errno.BadFileDescriptor;
        });
        linker.DefineFunction("env", "__syscall_ftruncate64", (Caller caller, int fd, long length) =>
        {
            var sandbox = Sandbox.From(caller);
            return sandbox.Files.Get(fd) is { } file ? -sandbox.Files.Truncate(file, length) : -Errno.BadFileDescriptor;
        });
        linker.DefineFunction("env", "__syscall_fchmod", (Caller caller, int fd, int mode) =>
        {
            var sandbox = Sandbox.From(caller);
            return sandbox.Files.Get(fd) is not { } file ? -Errno.BadFileDescriptor
                : file.Node.Writable ? 0 : -Errno.ReadOnlyFileSystem;
        });
        linker.DefineFunction("env", "__syscall_fadvise64", (Caller caller, int fd, long offset, long length, int advice) =>
            Sandbox.From(caller).Files.Get(fd) is null ? -Errno.BadFileDescriptor : 0);
        linker.DefineFunction("env", "__syscall_fstatfs64", (Caller caller, int fd, int size, int buffer) =>
        {
            var sandbox = Sandbox.From(caller);
            if (sandbox.Files.Get(fd) is null)
            {
                return -Errno.BadFileDescriptor;
            }
            var memory = sandbox.Exports.Memory;
            sandbox.Span(buffer, Math.Clamp(size, 0, 128)).Clear();
            memory.WriteInt32(buffer + 4, 4096);     // f_bsize
            memory.WriteInt32(buffer + 8, 1_000_000); // f_blocks
            memory.WriteInt32(buffer + 36, 255);     // f_namelen
            memory.WriteInt32(buffer + 40, 4096);    // f_frsize
            return 0;
        });
        linker.DefineFunction("env", "__syscall_getdents64", (Caller caller, int fd, int entries, int count) =>
            ReadDirectory(Sandbox.From(caller), fd, entries, count));
    }

    private static void DefinePathFunctions(Linker linker)
    {
        linker.DefineFunction("env", "__syscall_openat", (Caller caller, int directoryFd, int path, int flags, int varargs) =>
        {
            var sandbox = Sandbox.From(caller);
            var error = sandbox.Files.Resolve(directoryFd, sandbox.ReadCString(path), out var fullPath);
            return error != Errno.Success ? -error : sandbox.Files.Open(fullPath, flags);
        });
        linker.DefineFunction("env", "__syscall_stat64", (Caller caller, int path, int buffer) =>
            StatPath(Sandbox.From(caller), OpenFlags.AtCurrentDirectory, path, buffer, 0));
        linker.DefineFunction("env", "__syscall_lstat64", (Caller caller, int path, int buffer) =>
            StatPath(Sandbox.From(caller), OpenFlags.AtCurrentDirectory, path, buffer, 0));
        linker.DefineFunction("env", "__syscall_newfstatat", (Caller caller, int directoryFd, int path, int buffer, int flags) =>
            StatPath(Sandbox.From(caller), directoryFd, path, buffer, flags));
        linker.DefineFunction("env", "__syscall_faccessat", (Caller caller, int directoryFd, int path, int mode, int flags) =>
        {
            var sandbox = Sandbox.From(caller);
            if ((mode & ~7) != 0)
            {
                return -Errno.Invalid;
            }
            var node = Lookup(sandbox, directoryFd, path, out var error);
            if (node is null)
            {
                return -error;
            }
            const int WriteAccess = 2;
            return (mode & WriteAccess) != 0 && !node.Writable && node.Kind != VirtualNodeKind.Device ? -Errno.ReadOnlyFileSystem : 0;
        });
        linker.DefineFunction("env", "__syscall_chdir", (Caller caller, int path) =>
        {
            var sandbox = Sandbox.From(caller);
            var error = sandbox.Files.Resolve(OpenFlags.AtCurrentDirectory, sandbox.ReadCString(path), out var fullPath);
            return -(error != Errno.Success ? error : sandbox.Files.ChangeDirectory(fullPath));
        });
        linker.DefineFunction("env", "__syscall_getcwd", (Caller caller, int buffer, int size) =>
        {
            var sandbox = Sandbox.From(caller);
            var bytes = System.Text.Encoding.UTF8.GetBytes(sandbox.Files.CurrentDirectory + "\0");
            if (size == 0)
            {
                return -Errno.Invalid;
            }
            if (size < bytes.Length)
            {
                return -Errno.Range;
            }
            bytes.CopyTo(sandbox.Span(buffer, bytes.Length));
            return bytes.Length;
        });
        linker.DefineFunction("env", "__syscall_chmod", (Caller caller, int path, int mode) => Touch(Sandbox.From(caller), OpenFlags.AtCurrentDirectory, path));
        linker.DefineFunction("env", "__syscall_utimensat", (Caller caller, int directoryFd, int path, int times, int flags) =>
            Touch(Sandbox.From(caller), directoryFd, path));
        linker.DefineFunction("env", "__syscall_mkdirat", (Caller caller, int directoryFd, int path, int mode) =>
            OnPath(Sandbox.From(caller), directoryFd, path, (files, fullPath) => files.MakeDirectory(fullPath)));
        linker.DefineFunction("env", "__syscall_unlinkat", (Caller caller, int directoryFd, int path, int flags) =>
            OnPath(Sandbox.From(caller), directoryFd, path, (files, fullPath) => files.Remove(fullPath, (flags & OpenFlags.AtRemoveDirectory) != 0)));
        linker.DefineFunction("env", "__syscall_rmdir", (Caller caller, int path) =>
            OnPath(Sandbox.From(caller), OpenFlags.AtCurrentDirectory, path, (files, fullPath) => files.Remove(fullPath, directory: true)));
        linker.DefineFunction("env", "__syscall_renameat", (Caller caller, int oldDirectoryFd, int oldPath, int newDirectoryFd, int newPath) =>
        {
            var sandbox = Sandbox.From(caller);
            var error = sandbox.Files.Resolve(oldDirectoryFd, sandbox.ReadCString(oldPath), out var from);
            if (error == Errno.Success)
            {
                error = sandbox.Files.Resolve(newDirectoryFd, sandbox.ReadCString(newPath), out var to);
                if (error == Errno.Success)
                {
                    error = sandbox.Files.Rename(from, to);
                }
            }
            return -error;
        });
        // There are no symbolic links: readlink of an existing path is EINVAL ("not a link").
        linker.DefineFunction("env", "__syscall_readlinkat", (Caller caller, int directoryFd, int path, int buffer, int size) =>
            Lookup(Sandbox.From(caller), directoryFd, path, out var error) is null ? -error : -Errno.Invalid);
        linker.DefineFunction("env", "__syscall_symlink", (Caller caller, int target, int path) => -Errno.NotPermitted);
    }

    /// <summary>Reads into or writes from a list of <c>iovec</c>s.</summary>
    private static int Transfer(Sandbox sandbox, int fd, int iovs, int count, long? offset, int resultAddress, bool write)
    {
        var file = sandbox.Files.Get(fd);
        if (file is null)
        {
            return Errno.BadFileDescriptor;
        }
        // One look at the memory's address and size for the whole transfer (no guest code runs meanwhile,
        // so it cannot grow): the binding's accessors ask Wasmtime for both on every field.
        var memory = sandbox.Exports.Memory;
        var basis = (byte*)memory.GetPointer();
        var size = memory.GetLength();
        if (count < 0 || iovs < 0 || (long)iovs + ((long)count * 8) > size || resultAddress < 0 || (long)resultAddress + 4 > size)
        {
            return Errno.Invalid;
        }
        var total = 0;
        for (var i = 0; i < count; i++)
        {
            var pointer = *(int*)(basis + iovs + (i * 8));
            var length = *(int*)(basis + iovs + (i * 8) + 4);
            if (length < 0 || (long)(uint)pointer + length > size)
            {
                return Errno.Invalid;
            }
            var span = new Span<byte>(basis + (uint)pointer, length);
            var position = offset is null ? (long?)null : offset + total;
            var done = write ? sandbox.Files.Write(file, span, position) : sandbox.Files.Read(file, span, position);
            if (done < 0)
            {
                return -done;
            }
            total += done;
            if (done < length)
            {
                break;
            }
        }
        *(int*)(basis + resultAddress) = total;
        return Errno.Success;
    }

    private static int Fcntl(Sandbox sandbox, int fd, int command, int varargs)
    {
        const int DuplicateCommand = 0, GetDescriptorFlags = 1, SetDescriptorFlags = 2, GetStatusFlags = 3, SetStatusFlags = 4;
        const int GetLock = 12, SetLock = 13, SetLockWait = 14, DuplicateCloseOnExec = 1030;
        var file = sandbox.Files.Get(fd);
        if (file is null)
        {
            return -Errno.BadFileDescriptor;
        }
        var memory = sandbox.Exports.Memory;
        switch (command)
        {
            case DuplicateCommand:
            case DuplicateCloseOnExec:
                var lowest = memory.ReadInt32(varargs);
                return lowest < 0 ? -Errno.Invalid : sandbox.Files.Duplicate(fd, lowest);
            case GetDescriptorFlags:
            case SetDescriptorFlags:
                return 0;
            case GetStatusFlags:
                return file.Flags;
            case SetStatusFlags:
                file.Flags |= memory.ReadInt32(varargs);
                return 0;
            case GetLock:
                // l_type = F_UNLCK: nothing else ever holds a lock in a sandbox.
                memory.WriteInt16(memory.ReadInt32(varargs), 2);
                return 0;
            case SetLock:
            case SetLockWait:
                return 0;
            default:
                return -Errno.Invalid;
        }
    }

    private static VirtualNode? Lookup(Sandbox sandbox, int directoryFd, int pathAddress, out int error)
    {
        error = sandbox.Files.Resolve(directoryFd, sandbox.ReadCString(pathAddress), out var fullPath);
        if (error != Errno.Success)
        {
            return null;
        }
        var node = sandbox.Files.Find(fullPath);
        error = node is null ? Errno.NoEntry : Errno.Success;
        return node;
    }

    private static int StatPath(Sandbox sandbox, int directoryFd, int pathAddress, int buffer, int flags)
    {
        if ((flags & OpenFlags.AtEmptyPath) != 0 && sandbox.ReadCString(pathAddress).Length == 0)
        {
            return sandbox.Files.Get(directoryFd) is { } file ? WriteStat(sandbox, file.Node, buffer) : -Errno.BadFileDescriptor;
        }
        var node = Lookup(sandbox, directoryFd, pathAddress, out var error);
        return node is null ? -error : WriteStat(sandbox, node, buffer);
    }

    private static int Touch(Sandbox sandbox, int directoryFd, int pathAddress)
    {
        var node = Lookup(sandbox, directoryFd, pathAddress, out var error);
        return node is null ? -error : node.Writable ? 0 : -Errno.ReadOnlyFileSystem;
    }

    private static int OnPath(Sandbox sandbox, int directoryFd, int pathAddress, Func<SandboxFileSystem, string, int> action)
    {
        var error = sandbox.Files.Resolve(directoryFd, sandbox.ReadCString(pathAddress), out var fullPath);
        return -(error != Errno.Success ? error : action(sandbox.Files, fullPath));
    }

    /// <summary>Fills Emscripten's <c>struct stat</c>.</summary>
    private static int WriteStat(Sandbox sandbox, VirtualNode node, int buffer)
    {
        var memory = sandbox.Exports.Memory;
        sandbox.Span(buffer, 96).Clear();
        var permissions = node.Writable ? 0x1B6 /* 0666 */ : 0x124 /* 0444 */;
        var mode = node.Kind switch
        {
            VirtualNodeKind.Directory => ModeDirectory | permissions | 0x49 /* +x */,
            VirtualNodeKind.Device => ModeCharacterDevice | 0x1B6,
            _ => ModeRegular | permissions,
        };
        memory.WriteInt32(buffer + 0, 1);               // st_dev
        memory.WriteInt32(buffer + 4, mode);            // st_mode
        memory.WriteInt32(buffer + 8, 1);               // st_nlink
        memory.WriteInt64(buffer + 24, node.Length);    // st_size
        memory.WriteInt32(buffer + 32, 4096);           // st_blksize
        memory.WriteInt32(buffer + 36, (int)((node.Length + 4095) / 4096)); // st_blocks
        memory.WriteInt64(buffer + 88, node.Inode);     // st_ino
        return 0;
    }

    /// <summary>Fills <c>dirent64</c> records; the descriptor's position counts records times their size.</summary>
    private static int ReadDirectory(Sandbox sandbox, int fd, int entries, int count)
    {
        var file = sandbox.Files.Get(fd);
        if (file is null)
        {
            return -Errno.BadFileDescriptor;
        }
        if (file.Node.Kind != VirtualNodeKind.Directory)
        {
            return -Errno.NotDirectory;
        }
        var names = sandbox.Files.List(file.Node);
        var memory = sandbox.Exports.Memory;
        var index = (int)(file.Position / SandboxFileSystem.DirentSize);
        var written = 0;
        while (index < names.Count && written + SandboxFileSystem.DirentSize <= count)
        {
            var name = names[index];
            var child = name is "." or ".." ? file.Node : sandbox.Files.Find(file.Node.Path == "/" ? "/" + name : file.Node.Path + "/" + name);
            var record = entries + written;
            sandbox.Span(record, SandboxFileSystem.DirentSize).Clear();
            memory.WriteInt64(record, child?.Inode ?? 0);
            memory.WriteInt64(record + 8, (index + 1L) * SandboxFileSystem.DirentSize);
            memory.WriteInt16(record + 16, SandboxFileSystem.DirentSize);
            // d_type: 2 character device, 4 directory, 8 regular file.
            memory.WriteByte(record + 18, child?.Kind switch { VirtualNodeKind.Directory => 4, VirtualNodeKind.Device => 2, _ => 8 });
            var nameBytes = System.Text.Encoding.UTF8.GetBytes(name);
            nameBytes.AsSpan(0, Math.Min(nameBytes.Length, 255)).CopyTo(sandbox.Span(record + 19, 256));
            written += SandboxFileSystem.DirentSize;
            index++;
        }
        file.Position = (long)index * SandboxFileSystem.DirentSize;
        return written;
    }
}
