using Wasmtime;

namespace IsolateGrains.Engine.Imports;

/// <summary>
/// C++ exceptions the Emscripten way (no WebAssembly exception instructions): a throw unwinds the
/// WebAssembly stack as a host exception up to the nearest <c>invoke_*</c> import, which reports it
/// with <c>setThrew</c>; the landing pad then asks which handler matches. The state lives in the
/// sandbox, as the glue keeps it in JavaScript.
/// </summary>
internal static class ExceptionImports
{
    // Offsets in Emscripten's __cxa_exception header, which sits 24 bytes before the thrown object.
    private const int HeaderSize = 24;
    private const int TypeOffset = 4;
    private const int DestructorOffset = 8;
    private const int CaughtOffset = 12;
    private const int RethrownOffset = 13;
    private const int AdjustedPointerOffset = 16;

    /// <summary>Defines the exception imports.</summary>
    public static void Define(Linker linker)
    {
        linker.DefineFunction("env", "invoke_vi", (Caller caller, int index, int argument) => InvokeVoidInt(Sandbox.From(caller), index, argument));
        linker.DefineFunction("env", "__cxa_throw", (Caller caller, int pointer, int type, int destructor) =>
        {
            var sandbox = Sandbox.From(caller);
            var memory = sandbox.Exports.Memory;
            var header = pointer - HeaderSize;
            memory.WriteInt32(header + AdjustedPointerOffset, 0);
            memory.WriteInt32(header + TypeOffset, type);
            memory.WriteInt32(header + DestructorOffset, destructor);
            sandbox.CxxExceptionLast = pointer;
            throw new CxxUnwind(pointer);
        });
        linker.DefineFunction("env", "__resumeException", (Caller caller, int pointer) =>
        {
            var sandbox = Sandbox.From(caller);
            if (sandbox.CxxExceptionLast == 0)
            {
                sandbox.CxxExceptionLast = pointer;
            }
            throw new CxxUnwind(sandbox.CxxExceptionLast);
        });
        linker.DefineFunction("env", "__cxa_find_matching_catch_3", (Caller caller, int caughtType) => FindMatchingCatch(Sandbox.From(caller), caughtType));
        linker.DefineFunction("env", "llvm_eh_typeid_for", (int type) => type);
        linker.DefineFunction("env", "__cxa_begin_catch", (Caller caller, int pointer) =>
        {
            var sandbox = Sandbox.From(caller);
            var memory = sandbox.Exports.Memory;
            var header = pointer - HeaderSize;
            memory.WriteByte(header + CaughtOffset, 1);
            memory.WriteByte(header + RethrownOffset, 0);
            sandbox.CxxExceptionsCaught.Push(pointer);
            sandbox.Exports.CxaIncrementRefcount(pointer);
            return ExceptionObject(sandbox, pointer);
        });
        linker.DefineFunction("env", "__cxa_end_catch", (Caller caller) =>
        {
            var sandbox = Sandbox.From(caller);
            sandbox.Exports.SetThrew(0, 0);
            if (sandbox.CxxExceptionsCaught.TryPop(out var pointer))
            {
                sandbox.Exports.CxaDecrementRefcount(pointer);
            }
            sandbox.CxxExceptionLast = 0;
        });
    }

    /// <summary>Calls <c>table[index](argument)</c>, turning a C++ unwind into <c>setThrew(1, 0)</c>.</summary>
    private static void InvokeVoidInt(Sandbox sandbox, int index, int argument)
    {
        var stack = sandbox.Exports.StackSave();
        try
        {
            var function = sandbox.Exports.Table.GetElement((uint)index) as Function
                ?? throw new SandboxFault($"invoke_vi called an empty table slot ({index}).");
            function.Invoke(argument);
        }
        catch (Exception e) when (IsCxxUnwind(e))
        {
            sandbox.Exports.StackRestore(stack);
            sandbox.Exports.SetThrew(1, 0);
        }
    }

    private static bool IsCxxUnwind(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is CxxUnwind)
            {
                return true;
            }
        }
        return false;
    }

    private static int FindMatchingCatch(Sandbox sandbox, int caughtType)
    {
        var thrown = sandbox.CxxExceptionLast;
        if (thrown == 0)
        {
            sandbox.Exports.SetTempRet0(0);
            return 0;
        }
        var memory = sandbox.Exports.Memory;
        var header = thrown - HeaderSize;
        memory.WriteInt32(header + AdjustedPointerOffset, thrown);
        var thrownType = memory.ReadInt32(header + TypeOffset);
        if (thrownType == 0)
        {
            sandbox.Exports.SetTempRet0(0);
            return thrown;
        }
        if (caughtType != 0 && caughtType != thrownType &&
            sandbox.Exports.CxaCanCatch(caughtType, thrownType, header + AdjustedPointerOffset) != 0)
        {
            sandbox.Exports.SetTempRet0(caughtType);
            return thrown;
        }
        sandbox.Exports.SetTempRet0(thrownType);
        return thrown;
    }

    private static int ExceptionObject(Sandbox sandbox, int pointer)
    {
        var memory = sandbox.Exports.Memory;
        var header = pointer - HeaderSize;
        if (sandbox.Exports.CxaIsPointerType(memory.ReadInt32(header + TypeOffset)) != 0)
        {
            return memory.ReadInt32(pointer);
        }
        var adjusted = memory.ReadInt32(header + AdjustedPointerOffset);
        return adjusted != 0 ? adjusted : pointer;
    }
}
